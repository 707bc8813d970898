//! The executor: run a command in the sandbox, or reuse a recorded run whose inputs still hold.
//!
//! 1. The weak key ([`key`]) names the command: argv, cwd, environment, sandbox policy, user,
//!    group, umask and the signals shark was started with ignored.
//! 2. Earlier successful runs with that key are tried newest first; one whose every recorded
//!    input still holds ([`inputs::check`]) is reused: its outputs restored ([`outputs`]), its
//!    stdout/stderr replayed, its exit status returned, and the reuse recorded.
//! 3. Otherwise the command runs in the sandbox; its inputs (derived from the ordered log of
//!    what it touched: [`inputs::observe`]), outputs and streams are stored and recorded
//!    ([`record`]), then its changes are applied to the real filesystem. Failed, networked,
//!    unfaithfully observed runs and runs whose inputs changed while they ran are recorded but
//!    never reused.
//! 4. Either way the run's unit of work (script, document, session, command) records the state
//!    it leaves its tracked paths in ([`unit`]).

pub mod apply;
pub mod inputs;
pub mod key;
pub mod outputs;
pub mod reason;
mod record;
pub mod remote;
pub mod stdio;
mod unit;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use shark_lineage::{Db, NewRun, Run, RunId};
use shark_sandbox::{Spec, Stdio};
use shark_store::{Digest, StatCache, Store};

use crate::error::CliError;
use crate::home::Home;
use crate::state::{self, ShellState};
use reason::Reason;
use stdio::{Live, Outputs, StdinPlan};

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
    /// Host folders the command sees at other paths (a document's data folder at `/data`).
    pub mapped: Vec<shark_sandbox::MappedRoot>,
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
            mapped: Vec::new(),
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
    unit: unit::Unit,
    undo: crate::undo::Keeper,
    remote: remote::Remote,
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
    /// Where the offset of a regular file on stdin stood before the command.
    stdin_offset: Option<u64>,
    /// The writable roots as directory handles: where changes and restores may write.
    tree: shark_sandbox::Tree,
}

impl Executor {
    /// Opens the store, stat cache and lineage database of `home`.
    pub fn open(home: &Home) -> Result<Executor, CliError> {
        let lock = home.lock(false)?;
        // Batched: a run's blobs are flushed together by one sync before it is recorded.
        let store = Store::open(&home.store_dir())
            .map_err(|e| CliError::failed("cannot open the store", e))?
            .batched();
        // Damaged databases heal themselves; the user hears of it once, here.
        store.on_heal(report_heal);
        // What killed sharks left in users' folders and the store; best effort.
        let _ = store.sweep();
        let cache = StatCache::open_with(
            &home.root().join("statcache.db"),
            Some(std::sync::Arc::new(report_heal)),
        )
        .map_err(|e| CliError::failed("cannot open the stat cache", e))?;
        let db = Db::open(&home.db_path())
            .map_err(|e| CliError::failed("cannot open the lineage database", e))?;
        let scratch = home.root().join("tmp");
        std::fs::create_dir_all(&scratch)
            .map_err(|e| CliError::failed(format!("cannot create {}", scratch.display()), e))?;
        sweep_scratch(&scratch);
        sweep_scratch(&steps_dir(home));
        let undo = crate::undo::Keeper::open(home)?;
        Ok(Executor {
            _lock: lock,
            home: home.clone(),
            store,
            cache,
            db,
            scratch,
            unit: unit::Unit::default(),
            undo,
            remote: remote::Remote::new(home.remote()),
        })
    }

    /// The lineage database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Makes this executor's commands the steps of one script or document: a path a step
    /// replaced after reading it may then hold as the script left it, as in a build (see
    /// [`inputs::CheckContext::whole_units`]).
    pub fn run_as_whole_unit(&mut self) {
        self.unit.whole = true;
    }

    /// Runs or reuses `req`.
    pub fn execute(&mut self, req: &Request) -> Result<Outcome, CliError> {
        let inv = self.invocation(req)?;
        let reason = if req.fresh {
            Reason::Fresh
        } else if req.network && !req.reuse_network {
            Reason::Network
        } else {
            // On a local miss, a run from the remote cache whose inputs hold here.
            let found = match self.lookup(req, &inv)? {
                Err(reason) => self.remote_lookup(req, &inv).unwrap_or(Err(reason)),
                found => found,
            };
            match found {
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
        // Mapped folders are part of the command's world: they enter the key as `INSIDE=HOST`
        // entries after the writable roots (no entry, and the same key as before, without).
        let mut key_roots = roots.clone();
        key_roots.extend(req.mapped.iter().map(|m| {
            let mut entry = m.inside.clone().into_os_string();
            entry.push("=");
            entry.push(&m.host);
            PathBuf::from(entry)
        }));
        let stdin_offset = match &stdin {
            StdinPlan::File { offset, .. } => Some(*offset),
            _ => None,
        };
        let key = key::weak_key(&key::KeyParts {
            argv: &req.argv,
            cwd: &cwd,
            env: env_digest,
            network: req.network,
            writable_roots: &key_roots,
            stdin_mode: stdin.mode(),
            stdout_tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            stderr_tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            identity: key::Identity::current(),
        });
        let tree = shark_sandbox::Tree::open(&roots, &[self.home.root().to_path_buf()])
            .map_err(|e| CliError::failed("cannot open the writable directories", e))?;
        Ok(Invocation {
            cwd,
            env,
            key_env,
            env_digest,
            roots,
            key,
            stdin,
            stdin_offset,
            tree,
        })
    }

    /// The newest recorded run whose inputs all hold, or why there is none.
    fn lookup(&self, req: &Request, inv: &Invocation) -> Result<Result<Run, Reason>, CliError> {
        let candidates = self
            .db
            .candidates(&inv.key, MAX_CANDIDATES)
            .map_err(|e| CliError::failed("cannot query the lineage database", e))?;
        let mut first_mismatch = None;
        let stdin = inv.stdin.digest();
        for run in candidates {
            let unit_states =
                |path: &str| self.db.unit_states_for(run.id, path).unwrap_or_default();
            let ctx = inputs::CheckContext {
                cache: &self.cache,
                stdin: stdin.as_ref(),
                unit_states: &unit_states,
                whole_units: self.unit.whole,
            };
            match run.inputs.iter().try_for_each(|i| inputs::check(i, &ctx)) {
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
        if let Ok(Some(last)) = self.db.last_run_of(&inv.key) {
            let last = match last.reused_from {
                Some(from) => self.db.run(from).unwrap_or(last),
                None => last,
            };
            if let Some(why) = last.unreusable.filter(|_| last.exit_code == Some(0)) {
                return Ok(Err(Reason::NotReusable {
                    run: last.id.0,
                    why,
                }));
            }
        }
        Ok(Err(self.key_change(req, inv)))
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
            // The rest of the key is not recorded per run: name every part it holds.
            what.push(
                "standard input, the writable directories, the terminals, or who runs it \
                 (user, group, umask, signals started ignored, as under nohup) differ"
                    .to_owned(),
            );
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
        // The streams too: a reuse that cannot replay what the command printed (its blob
        // lost with a damaged pack, say) runs the command instead.
        let empty = Digest::of_bytes(b"");
        let mut streams = Vec::new();
        for (digest, live) in [(run.stdout, Live::Stdout), (run.stderr, Live::Stderr)] {
            // Most streams are empty: nothing to read or replay.
            if let Some(d) = digest.filter(|d| *d != empty) {
                match self.store.read_to_vec(&d) {
                    Ok(bytes) => streams.push((live, bytes)),
                    Err(e) => return Err(failed(&e)),
                }
            }
        }
        // What the restore has to write, found once: undo keeps what that replaces.
        let pending = outputs::pending(&run.outputs, &self.cache);
        let prior = self
            .undo
            .capture(&self.store, &self.cache, &self.db, &run.outputs, &pending);
        if let Err(e) =
            outputs::restore_pending(&run.outputs, &pending, &self.store, &self.cache, &inv.tree)
        {
            return Err(failed(&e));
        }
        // The command would have left a file on stdin this much further on.
        if let (Some(offset), Some(consumed)) = (inv.stdin_offset, run.stdin_consumed) {
            let _ = stdio::seek_stdin(offset + consumed);
        }
        for (live, bytes) in streams {
            let _ = stdio::write_live(live, &bytes);
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
            stdin_consumed: run.stdin_consumed,
            ..record
        };
        let id = self.db.record(&record).map_err(|e| Reason::RestoreFailed {
            run: run.id.0,
            detail: e.to_string(),
        })?;
        prior.attach(&self.undo, &self.store, &mut self.db, id);
        self.unit
            .settle(id, &run.inputs, &run.outputs, &mut self.db, &self.cache);
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
            unit: self.unit.first,
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
            mapped_roots: req.mapped.clone(),
            // The scratch directories hold the sandbox's own root mount: through them the
            // whole host tree would be readable under another name, unobserved.
            hidden: vec![self.scratch.clone()],
            network: req.network,
            fast_path: Spec::fast_path_default(),
            stdin,
            stdout: Stdio::Fd(streams.stdout),
            stderr: Stdio::Fd(streams.stderr),
            ignored_signals: shark_sandbox::inherited_ignored_signals().to_vec(),
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
        let recorded = record?;
        let run = recorded.id;
        self.undo.keep(
            &self.store,
            &self.cache,
            &mut self.db,
            run,
            &recorded.outputs,
        );
        let conflicts = match apply::apply(&report, &recorded.resolved, &inv.tree) {
            Ok(conflicts) => conflicts,
            Err(e) => {
                let why = format!(
                    "its changes could not be applied ({})",
                    crate::error::chain(&e)
                );
                let _ = self.db.mark_unreusable(run, &why);
                return Err(CliError::failed("cannot apply the command's changes", e));
            }
        };
        self.undo.applied(&mut self.db, run);
        for c in &conflicts {
            eprintln!("shark: conflict: {c}");
        }
        if let Some(c) = conflicts.first() {
            let why = format!(
                "its change of {} was not applied: {}",
                c.path.display(),
                c.what
            );
            let _ = self.db.mark_unreusable(run, &why);
        }
        self.unit.settle(
            run,
            &recorded.inputs,
            &recorded.outputs,
            &mut self.db,
            &self.cache,
        );
        if conflicts.is_empty() {
            self.remote_upload(req, &inv, run);
        }
        // The command succeeded, but not all of its result is in place: say so by the status.
        let code = match report.status.code() {
            0 if !conflicts.is_empty() => crate::error::EXIT_FAILURE,
            code => code,
        };
        Ok(Outcome {
            run,
            code,
            reused: None,
            took: report.wall,
            state,
        })
    }
}

/// Tells the user that a damaged database was set aside and what became of it.
fn report_heal(healed: &shark_store::Healed) {
    eprintln!("shark: warning: {healed}");
}

/// Where sessions write the programs their steps run (see [`crate::session`]): in the shark
/// home, which the sandbox shows read-only and leaves out of what a run reads, but not in the
/// scratch directory, which it hides.
pub(crate) fn steps_dir(home: &Home) -> PathBuf {
    home.root().join("steps")
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
/// `$HOME`, the current directory and `/tmp`, sorted.
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
    // Nested roots stay listed: the sandbox merges them into the outer one, except where a
    // directory of another owner lies between them (see `shark_sandbox::Spec`).
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
