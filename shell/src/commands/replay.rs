//! `shark replay RUN|PATH [--into DIR]`: re-execute a recorded computation in a scratch tree
//! and compare what it produces with the recording.
//!
//! The runs to replay are one run, or for a path every run upstream of its current content
//! (oldest first). Paths under their common base directory (the deepest directory holding
//! every run's working directory) are mapped into the scratch tree: source files (inputs no
//! replayed run produces) are restored there from the store at their recorded versions, and
//! each run's outputs land there for the next run to read. Everything else (system files,
//! interpreters, libraries) is used from the real system; any of those whose content changed
//! since the recording is listed, since it may explain a difference. Each run's recorded
//! environment is restored from the store. A run whose inputs the store no longer holds says
//! which, and is skipped.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde_json::json;
use shark_lineage::{Db, InputKind, LineageNode, LineageOptions, OutputKind, Run, RunId};
use shark_sandbox::{Change, Spec, Stdio};
use shark_store::{Digest, Store};

use crate::cli::ReplayArgs;
use crate::error::CliError;
use crate::exec::key;
use crate::home::Home;

/// How one recorded output compares with its replay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Identical,
    Differs { now: String },
    Missing,
    Outside,
}

#[derive(Debug)]
struct RunReport {
    run: RunId,
    command: String,
    skipped: Option<String>,
    exit: Option<i32>,
    outputs: Vec<(String, Verdict)>,
    changed_system: Vec<String>,
}

pub(crate) fn run(home: &Home, args: &ReplayArgs) -> Result<i32, CliError> {
    let db = Db::open(&home.db_path())
        .map_err(|e| CliError::failed("cannot open the lineage database", e))?;
    let store =
        Store::open(&home.store_dir()).map_err(|e| CliError::failed("cannot open the store", e))?;
    let runs = chain(&db, &args.target)?;
    let base = common_base(&runs);
    let (dir, _keep) = match &args.into {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| CliError::failed(format!("cannot create {}", d.display()), e))?;
            let d = std::fs::canonicalize(d)
                .map_err(|e| CliError::failed(format!("cannot resolve {}", d.display()), e))?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("shark-replay-")
                .tempdir()
                .map_err(|e| CliError::failed("cannot create a scratch directory", e))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let scratch = home.root().join("tmp");
    // Steps' programs go where the sandbox shows them (it hides the scratch directory).
    let steps = crate::exec::steps_dir(home);
    for dir in [&scratch, &steps] {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failed(format!("cannot create {}", dir.display()), e))?;
    }
    let map = Mapper {
        base: base.clone(),
        dir: dir.clone(),
    };
    let mut produced: HashSet<String> = HashSet::new();
    let mut reports = Vec::new();
    for run in &runs {
        let report = replay_one(run, &store, &map, &produced, &scratch, &steps)?;
        produced.extend(run.outputs.iter().map(|o| o.path.clone()));
        reports.push(report);
    }
    let differs = reports.iter().any(|r| {
        r.skipped.is_some()
            || r.outputs
                .iter()
                .any(|(_, v)| matches!(v, Verdict::Differs { .. } | Verdict::Missing))
    });
    if args.json {
        println!("{}", to_json(&reports, &base, &dir, args.into.is_some()));
    } else {
        print_text(&reports, &base, &dir, args.into.is_some());
    }
    Ok(if differs { 1 } else { 0 })
}

/// The runs to replay, oldest first.
fn chain(db: &Db, target: &str) -> Result<Vec<Run>, CliError> {
    let ids: Vec<RunId> = if let Ok(id) = target.parse::<i64>() {
        vec![RunId(id)]
    } else {
        let path = Path::new(target);
        let real = std::fs::canonicalize(path).map_err(|e| {
            CliError::usage(
                format!("{target}: {e}"),
                Some("give a run id (see shark log) or an existing file".into()),
            )
        })?;
        let digest = Digest::of_file(&real)
            .map_err(|e| CliError::failed(format!("cannot read {}", real.display()), e))?;
        let text = real.to_string_lossy().into_owned();
        let opts = LineageOptions {
            include_system: false,
            max_depth: 64,
        };
        let tree = db
            .lineage(&text, &digest, &opts)
            .map_err(|e| CliError::failed("cannot query the lineage database", e))?;
        if tree.run.is_none() {
            return Err(CliError::usage(
                format!("{text}: no recorded run produced its current content"),
                Some("see shark lineage for its history".into()),
            ));
        }
        let mut ids = Vec::new();
        post_order(&tree, &mut ids);
        let mut seen = HashSet::new();
        ids.retain(|id| seen.insert(*id));
        ids
    };
    let mut runs = Vec::new();
    for id in ids {
        let mut run = db.run(id).map_err(|e| match e {
            shark_lineage::LineageError::NoSuchRun { .. } => CliError::usage(
                format!("no run {} in the lineage database", id.0),
                Some("see shark log for run ids".into()),
            ),
            e => CliError::failed("cannot query the lineage database", e),
        })?;
        // A reuse did not compute anything: replay the run it reused.
        if let Some(from) = run.reused_from {
            run = db
                .run(from)
                .map_err(|e| CliError::failed("cannot query the lineage database", e))?;
        }
        runs.push(run);
    }
    Ok(runs)
}

fn post_order(n: &LineageNode, out: &mut Vec<RunId>) {
    for i in &n.inputs {
        post_order(i, out);
    }
    if let Some(r) = &n.run {
        out.push(r.id);
    }
}

/// The deepest directory holding every run's working directory.
fn common_base(runs: &[Run]) -> PathBuf {
    let mut base: Option<PathBuf> = None;
    for r in runs {
        let cwd = PathBuf::from(&r.cwd);
        base = Some(match base {
            None => cwd,
            Some(b) => {
                let mut common = PathBuf::new();
                for (x, y) in b.components().zip(cwd.components()) {
                    if x != y {
                        break;
                    }
                    common.push(x);
                }
                common
            }
        });
    }
    base.unwrap_or_else(|| PathBuf::from("/"))
}

/// Maps recorded paths under the base into the scratch tree.
struct Mapper {
    base: PathBuf,
    dir: PathBuf,
}

impl Mapper {
    fn map(&self, path: &Path) -> Option<PathBuf> {
        if self.base == Path::new("/") {
            return None;
        }
        path.strip_prefix(&self.base)
            .ok()
            .map(|rel| self.dir.join(rel))
    }
}

fn replay_one(
    run: &Run,
    store: &Store,
    map: &Mapper,
    produced: &HashSet<String>,
    scratch: &Path,
    steps: &Path,
) -> Result<RunReport, CliError> {
    let mut report = RunReport {
        run: run.id,
        command: run.command.clone(),
        skipped: None,
        exit: None,
        outputs: Vec::new(),
        changed_system: Vec::new(),
    };
    let Some(cwd) = map.map(Path::new(&run.cwd)) else {
        report.skipped = Some(format!(
            "its working directory {} cannot be mapped into a scratch tree",
            run.cwd
        ));
        return Ok(report);
    };
    // Materialise sources; note system inputs that changed.
    let mut missing = BTreeSet::new();
    for input in &run.inputs {
        let path = Path::new(&input.path);
        match (map.map(path), input.kind) {
            (Some(_), _) if produced.contains(&input.path) => {}
            (Some(target), InputKind::File) => {
                let Some(d) = input.digest else { continue };
                if let Some(parent) = target.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let mode = std::fs::metadata(path)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                    .unwrap_or(0o644);
                if store.restore(&d, &target, mode).is_err() {
                    missing.insert(input.path.clone());
                }
            }
            (Some(target), InputKind::Dir) => {
                let _ = std::fs::create_dir_all(target);
            }
            (Some(_), _) => {}
            (None, InputKind::File) => {
                let now = Digest::of_file(path).ok();
                if now != input.digest {
                    report.changed_system.push(input.path.clone());
                }
            }
            (None, _) => {}
        }
    }
    if !missing.is_empty() {
        report.skipped = Some(format!(
            "inputs no longer in the store: {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
        return Ok(report);
    }
    let env = match store
        .read_to_vec(&run.env_digest)
        .ok()
        .and_then(|b| key::decode_env(&b))
    {
        Some(env) => env,
        None => {
            report.skipped = Some("its environment is not in the store".into());
            return Ok(report);
        }
    };
    // A step of a script or of the interactive shell: its program is made again from the
    // state its key holds, in a folder of its own.
    let step = crate::state::reach::from_key(&env);
    let programs = match &step {
        Some(_) => Some(
            tempfile::Builder::new()
                .prefix(&format!(".shark-step-{}-", std::process::id()))
                .tempdir_in(steps)
                .map_err(|e| CliError::failed("cannot create a scratch directory", e))?,
        ),
        None => None,
    };
    let env: Vec<(OsString, OsString)> = match &step {
        Some((state, _)) => state.env.clone(),
        None => env,
    };
    let env: Vec<(OsString, OsString)> = env
        .into_iter()
        .map(|(k, v)| match k.to_str() {
            Some("PWD") => (k, cwd.clone().into_os_string()),
            _ => (k, v),
        })
        .collect();
    let mut start = cwd.clone();
    if let (Some((state, keyed)), Some(dir)) = (&step, &programs) {
        let name = run.argv.get(1).map(String::as_str).unwrap_or("bash");
        let (from, files) = crate::session::layout(dir.path(), &[Path::new(name)]);
        let file = files[0].clone();
        let state = crate::state::ShellState {
            cwd: cwd.clone(),
            env: env.clone(),
            ..state.clone()
        };
        let step = crate::state::program::Step {
            text: &keyed.text,
            line: keyed.line,
            last: keyed.last,
            dollar0: keyed.dollar0.as_deref(),
            unparsed: false,
        };
        let program = crate::state::program::generate(
            &state,
            &step,
            &std::collections::BTreeMap::new(),
            crate::state::program::SANDBOX,
        );
        crate::session::write_program(&file, &program)?;
        start = from;
    }
    let _ = std::fs::create_dir_all(&cwd);
    let devnull = |w: bool| -> Result<OwnedFd, CliError> {
        std::fs::OpenOptions::new()
            .read(!w)
            .write(w)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| CliError::failed("cannot open /dev/null", e))
    };
    let spec = Spec {
        argv: run.argv.iter().map(OsString::from).collect(),
        cwd: start,
        env,
        writable_roots: vec![map.dir.clone(), PathBuf::from("/tmp")],
        scratch_dir: scratch.to_path_buf(),
        read_only: Vec::new(),
        mapped_roots: Vec::new(),
        hidden: vec![scratch.to_path_buf()],
        network: false,
        fast_path: Spec::fast_path_default(),
        stdin: Stdio::Fd(devnull(false)?),
        stdout: Stdio::Fd(devnull(true)?),
        stderr: Stdio::Fd(devnull(true)?),
        ignored_signals: shark_sandbox::inherited_ignored_signals().to_vec(),
    };
    let replayed = shark_sandbox::run(spec)
        .map_err(|e| CliError::failed(format!("cannot replay run {}", run.id), e))?;
    report.exit = Some(replayed.status.code());
    for out in &run.outputs {
        let verdict = match map.map(Path::new(&out.path)) {
            None => Verdict::Outside,
            Some(target) => compare(out.kind, out.digest, &target, &replayed.changes),
        };
        report.outputs.push((out.path.clone(), verdict));
    }
    replayed
        .apply()
        .map_err(|e| CliError::failed("cannot apply the replayed changes", e))?;
    Ok(report)
}

/// Compares one recorded output with what the replay left at `target`.
fn compare(kind: OutputKind, digest: Option<Digest>, target: &Path, changes: &[Change]) -> Verdict {
    let change = changes.iter().rev().find(|c| c.path() == target);
    match (kind, change) {
        (OutputKind::File, Some(Change::File { source, .. })) => match Digest::of_file(source) {
            Ok(now) if Some(now) == digest => Verdict::Identical,
            Ok(now) => Verdict::Differs {
                now: format!("file {}", now.short(12)),
            },
            Err(_) => Verdict::Missing,
        },
        (OutputKind::Dir, Some(Change::Dir { .. })) => Verdict::Identical,
        (OutputKind::Symlink, Some(Change::Symlink { target, .. })) => {
            let now = Digest::of_symlink(target.as_os_str().as_encoded_bytes());
            if Some(now) == digest {
                Verdict::Identical
            } else {
                Verdict::Differs {
                    now: format!("symlink to {}", target.display()),
                }
            }
        }
        (OutputKind::Deleted, Some(Change::Deleted { .. })) => Verdict::Identical,
        (OutputKind::Deleted, None) if target.symlink_metadata().is_err() => Verdict::Identical,
        (_, None) => Verdict::Missing,
        (_, Some(other)) => Verdict::Differs {
            now: match other {
                Change::File { .. } => "a file".into(),
                Change::Dir { .. } => "a directory".into(),
                Change::Symlink { .. } => "a symlink".into(),
                Change::Deleted { .. } => "deleted".into(),
            },
        },
    }
}

fn print_text(reports: &[RunReport], base: &Path, dir: &Path, kept: bool) {
    println!(
        "replaying {} run(s) with {} mapped to {}",
        reports.len(),
        base.display(),
        dir.display()
    );
    for r in reports {
        println!("run {} `{}`", r.run, r.command);
        if let Some(why) = &r.skipped {
            println!("  not replayed: {why}");
            continue;
        }
        if let Some(code) = r.exit.filter(|c| *c != 0) {
            println!("  exited with status {code}");
        }
        for p in &r.changed_system {
            println!("  note: {p} changed since the recording");
        }
        let same = r
            .outputs
            .iter()
            .filter(|(_, v)| *v == Verdict::Identical)
            .count();
        println!("  {same} of {} outputs identical", r.outputs.len());
        for (path, v) in &r.outputs {
            match v {
                Verdict::Identical => {}
                Verdict::Differs { now } => println!("  differs: {path} (now {now})"),
                Verdict::Missing => println!("  missing: {path} (the replay did not produce it)"),
                Verdict::Outside => println!("  not compared: {path} (outside the scratch tree)"),
            }
        }
    }
    if kept {
        println!("the scratch tree is kept in {}", dir.display());
    }
}

fn to_json(reports: &[RunReport], base: &Path, dir: &Path, kept: bool) -> serde_json::Value {
    let runs: Vec<_> = reports
        .iter()
        .map(|r| {
            let outputs: Vec<_> = r
                .outputs
                .iter()
                .map(|(path, v)| {
                    let (status, now) = match v {
                        Verdict::Identical => ("identical", None),
                        Verdict::Differs { now } => ("differs", Some(now.clone())),
                        Verdict::Missing => ("missing", None),
                        Verdict::Outside => ("not-compared", None),
                    };
                    json!({"path": path, "status": status, "now": now})
                })
                .collect();
            json!({
                "id": r.run.0,
                "command": r.command,
                "replayed": r.skipped.is_none(),
                "skipped": r.skipped,
                "exit_code": r.exit,
                "changed_system_inputs": r.changed_system,
                "outputs": outputs,
            })
        })
        .collect();
    json!({
        "base": base.to_string_lossy(),
        "scratch": if kept { Some(dir.to_string_lossy()) } else { None },
        "runs": runs,
    })
}
