//! `shark undo [RUN]`, `shark checkout RUN [--into DIR]` and `shark snapshots`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::json;
use shark_lineage::{
    Db, NewRun, Output, OutputKind, Prior, PriorKind, RunId, UndoData, UndoRecord,
};
use shark_store::{Digest, StatCache, Store};

use super::query::{emit, load_run, parse_run};
use crate::cli::{CheckoutArgs, SnapshotsArgs, UndoArgs};
use crate::error::CliError;
use crate::home::{Home, HomeLock};
use crate::undo::apply::{self, Views};
use crate::undo::capture::{self, Keep, Target};
use crate::undo::plan::{self, Action, Conflict, Plan, Source};

/// Directories whose files a checkout leaves out: the system's, not the user's data.
const SYSTEM: [&str; 10] = [
    "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev",
];

/// How many conflicting paths an error names before it says how many more there are.
const NAMED: usize = 10;

struct Session {
    _lock: HomeLock,
    home: Home,
    store: Store,
    cache: StatCache,
    db: Db,
}

impl Session {
    fn open(home: &Home) -> Result<Session, CliError> {
        let lock = home.lock(false)?;
        let store = Store::open(&home.store_dir())
            .map_err(|e| CliError::failed("cannot open the store", e))?
            .batched();
        let cache = StatCache::open(&home.root().join("statcache.db"))
            .map_err(|e| CliError::failed("cannot open the stat cache", e))?;
        Ok(Session {
            _lock: lock,
            home: home.clone(),
            store,
            cache,
            db: open_db(home)?,
        })
    }
}

fn open_db(home: &Home) -> Result<Db, CliError> {
    Db::open(&home.db_path()).map_err(|e| CliError::failed("cannot open the lineage database", e))
}

fn db_fail(e: shark_lineage::LineageError) -> CliError {
    CliError::failed("cannot query the lineage database", e)
}

/// `shark undo [RUN] [--force] [--dry-run] [--json]`.
pub(crate) fn undo(home: &Home, args: &UndoArgs) -> Result<i32, CliError> {
    let started = SystemTime::now();
    let mut s = Session::open(home)?;
    let run = match &args.run {
        Some(text) => load_run(&s.db, parse_run(text)?)?.id,
        None => {
            s.db.last_undoable()
                .map_err(db_fail)?
                .ok_or_else(|| CliError::usage("no run has changed anything yet", None))?
        }
    };
    let data = undo_data(&s.db, run)?;
    let outputs = s.db.outputs_of(run).map_err(db_fail)?;
    let stamps = s.db.after_stamps(run).map_err(db_fail)?;
    let plan = plan::plan(&outputs, &data.prior, &stamps, &s.cache);
    if args.dry_run {
        return print_dry_run(run, &plan, args.json);
    }
    if !plan.conflicts.is_empty() && !args.force {
        return Err(conflict_error(run, &plan.conflicts));
    }
    let scratch = s.home.root().join("tmp");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| CliError::failed(format!("cannot create {}", scratch.display()), e))?;
    let tools = &shark_zfs::System;
    let fail = |e| CliError::failed(format!("cannot undo run {run}"), e);
    // Everything that can refuse comes before the undo is recorded and the files change.
    let views = Views::open(tools, &plan.actions, &data.snapshots, &scratch).map_err(fail)?;
    let id = record_undo(&mut s, run, &plan, &outputs, started)?;
    let touched: HashSet<PathBuf> = outputs.iter().map(|o| PathBuf::from(&o.path)).collect();
    let (left, rolled) = views
        .roll_back(tools, plan.actions.clone(), &touched)
        .map_err(fail)?;
    apply::apply(&left, &s.store, &views).map_err(fail)?;
    drop(views);
    let files: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::File { .. }))
        .map(|a| a.path().to_string_lossy().into_owned())
        .collect();
    crate::undo::record_stamps(&mut s.db, id, &files);
    print_done(run, id, &plan, &rolled, args.json)
}

/// Records the undo of `run` as a run, with its own undo data; returns its id.
fn record_undo(
    s: &mut Session,
    run: RunId,
    plan: &Plan,
    outputs: &[Output],
    started: SystemTime,
) -> Result<RunId, CliError> {
    let (prior, kept_bytes) = undo_prior(s, plan, outputs)?;
    let record = undo_run(run, &plan.actions, started);
    s.store
        .sync()
        .map_err(|e| CliError::failed("cannot store undo data", e))?;
    let fail = |e| CliError::failed("cannot record the undo", e);
    let id = s.db.record(&record).map_err(fail)?;
    let undo = UndoRecord {
        undoes: Some(run),
        kept_bytes,
        prior,
        snapshots: Vec::new(),
    };
    s.db.record_undo(id, &undo).map_err(fail)?;
    Ok(id)
}

fn undo_data(db: &Db, run: RunId) -> Result<UndoData, CliError> {
    let data = db.undo_data(run).map_err(db_fail)?;
    match data {
        Some(d) if d.dropped => Err(CliError::usage(
            format!("the undo data of run {run} was dropped to stay within the undo budget"),
            Some("SHARK_UNDO_BYTES or undo_bytes in the config file sets the budget".into()),
        )),
        Some(d) if d.entries > 0 => Ok(d),
        _ => Err(CliError::usage(
            format!("run {run} has nothing to undo"),
            Some(
                "it changed no file, or ran without undo data (SHARK_UNDO=off, or before \
                 shark kept it)"
                    .into(),
            ),
        )),
    }
}

fn conflict_error(run: RunId, conflicts: &[Conflict]) -> CliError {
    let mut named: Vec<String> = conflicts
        .iter()
        .take(NAMED)
        .map(|c| format!("{} ({})", c.path.display(), c.what))
        .collect();
    if conflicts.len() > NAMED {
        named.push(format!("and {} more", conflicts.len() - NAMED));
    }
    CliError::Refused {
        message: format!("not undoing run {run}: {}", named.join(", ")),
        hint: format!(
            "`shark undo {run} --force` undoes it anyway and loses those changes; \
             `--dry-run` lists what it would do"
        ),
    }
}

/// What the paths an undo touches hold now, as the undo's own undo data: the undone run's
/// result where it is still there (already in the store), captured afresh elsewhere.
fn undo_prior(s: &Session, plan: &Plan, outputs: &[Output]) -> Result<(Vec<Prior>, u64), CliError> {
    let after = plan::final_state(outputs);
    let conflicted: HashSet<&Path> = plan.conflicts.iter().map(|c| c.path.as_path()).collect();
    let mut seen = HashSet::new();
    let mut prior = Vec::new();
    let mut fresh = Vec::new();
    for a in &plan.actions {
        let path = a.path();
        if !seen.insert(path.to_owned()) {
            continue;
        }
        let known = after.get(path).filter(|_| !conflicted.contains(path));
        match known.map(|o| from_output(o, &s.store)) {
            Some(Some(p)) => prior.push(p),
            Some(None) => fresh.push(Target {
                path: path.to_owned(),
                tree: true,
            }),
            None if conflicted.contains(path) => fresh.push(Target {
                path: path.to_owned(),
                tree: true,
            }),
            None => prior.push(absent(path)),
        }
    }
    let captured = capture::capture(&fresh, &[], &s.store, &s.cache, &NoSnapshots, u64::MAX)
        .map_err(|e| CliError::failed("cannot keep what undo replaces", e))?;
    prior.extend(captured.prior);
    prior.sort_by_key(|p| Path::new(&p.path).components().count());
    Ok((prior, captured.kept_bytes))
}

struct NoSnapshots;

impl Keep for NoSnapshots {
    fn snapshot_of(&self, _: &Path) -> Option<String> {
        None
    }
}

fn absent(path: &Path) -> Prior {
    Prior {
        path: path.to_string_lossy().into_owned(),
        kind: PriorKind::Absent,
        digest: None,
        mode: None,
        symlink_target: None,
        snapshot: None,
    }
}

/// A run's result at a path as a prior entry; `None` for a file whose content the store does
/// not hold.
fn from_output(o: &Output, store: &Store) -> Option<Prior> {
    let mut p = absent(Path::new(&o.path));
    match o.kind {
        OutputKind::Deleted => {}
        OutputKind::Dir => {
            p.kind = PriorKind::Dir;
            p.mode = o.mode;
        }
        OutputKind::Symlink => {
            p.kind = PriorKind::Symlink;
            p.symlink_target = o.symlink_target.clone();
        }
        OutputKind::File => {
            let digest = o.digest.filter(|d| store.contains(d))?;
            p.kind = PriorKind::File;
            p.digest = Some(digest);
            p.mode = o.mode;
        }
    }
    Some(p)
}

/// The record of an undo: a run whose outputs are what the undo leaves.
fn undo_run(run: RunId, actions: &[Action], started: SystemTime) -> NewRun {
    let command = format!("shark undo {run}");
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let env = crate::exec::key::env_digest(&[]);
    let key = Digest::of_bytes(command.as_bytes());
    let mut record = NewRun::new(command, cwd, env, key, started);
    record.argv = vec!["shark".into(), "undo".into(), run.to_string()];
    record.exit_code = Some(0);
    record.duration = started.elapsed().unwrap_or_default();
    record.reason = Some(json!({"undo": run.0}).to_string());
    record.outputs = actions.iter().map(output_of).collect();
    record
}

fn output_of(a: &Action) -> Output {
    let mut o = Output {
        path: a.path().to_string_lossy().into_owned(),
        kind: OutputKind::Deleted,
        digest: None,
        mode: None,
        symlink_target: None,
    };
    match a {
        Action::Remove { .. } => {}
        Action::Dir { mode, .. } => {
            o.kind = OutputKind::Dir;
            o.mode = Some(*mode);
        }
        Action::Symlink { target, .. } => {
            o.kind = OutputKind::Symlink;
            o.digest = Some(Digest::of_symlink(target.as_bytes()));
            o.symlink_target = Some(target.clone());
        }
        Action::File { mode, from, .. } => {
            o.kind = OutputKind::File;
            o.mode = Some(*mode);
            o.digest = match from {
                Source::Store(d) => Some(*d),
                Source::Snapshot(_) => None,
            };
        }
    }
    o
}

fn print_dry_run(run: RunId, plan: &Plan, as_json: bool) -> Result<i32, CliError> {
    let text = if as_json {
        let v = json!({"run": run, "dry_run": true, "conflicts": plan.conflicts,
            "actions": plan.actions});
        format!("{v}\n")
    } else {
        let mut t = format!("undo of run {run} would:\n");
        for a in &plan.actions {
            t.push_str(&format!("  {}\n", a.describe()));
        }
        for c in &plan.conflicts {
            t.push_str(&format!("conflict: {} ({})\n", c.path.display(), c.what));
        }
        t
    };
    emit(&text)?;
    Ok(0)
}

fn print_done(
    run: RunId,
    id: RunId,
    plan: &Plan,
    rolled: &[String],
    as_json: bool,
) -> Result<i32, CliError> {
    let removed = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Remove { .. }))
        .count();
    let restored = plan.actions.len() - removed;
    let text = if as_json {
        let v = json!({"run": run, "undo_run": id, "dry_run": false, "forced": plan.conflicts,
            "actions": plan.actions, "rolled_back": rolled});
        format!("{v}\n")
    } else {
        let mut t = format!(
            "undid run {run} (recorded as run {id}): {restored} restored, {removed} removed\n"
        );
        for name in rolled {
            t.push_str(&format!("rolled back to snapshot {name}\n"));
        }
        t
    };
    emit(&text)?;
    Ok(0)
}

/// `shark checkout RUN [--into DIR] [--json]`.
pub(crate) fn checkout(home: &Home, args: &CheckoutArgs) -> Result<i32, CliError> {
    let db = open_db(home)?;
    let store =
        Store::open(&home.store_dir()).map_err(|e| CliError::failed("cannot open the store", e))?;
    let mut run = load_run(&db, parse_run(&args.run)?)?;
    if let Some(origin) = run.reused_from {
        run = load_run(&db, origin)?;
    }
    let dir = match &args.into {
        Some(d) => d.clone(),
        None => PathBuf::from(format!(
            "shark-checkout-{}",
            args.run.trim_start_matches('#')
        )),
    };
    new_dir(&dir)?;
    let files = files_after(&run);
    let mut paths: Vec<&String> = files.keys().collect();
    paths.sort();
    let (mut written, mut missing) = (0, Vec::new());
    for path in paths {
        let target = dir.join(path.trim_start_matches('/'));
        match materialise(&files[path], &target, &store) {
            Ok(true) => written += 1,
            Ok(false) => {}
            Err(_) => missing.push(path.clone()),
        }
    }
    let text = if args.json {
        let v = json!({"run": run.id, "into": dir, "files": written, "missing": missing});
        format!("{v}\n")
    } else {
        let mut t = format!(
            "checked out run {} into {}: {written} files\n",
            run.id,
            dir.display()
        );
        for m in &missing {
            t.push_str(&format!("not in the store: {m}\n"));
        }
        t
    };
    emit(&text)?;
    Ok(0)
}

/// The user files `run` read, and what it wrote over them, as they were right after it.
fn files_after(run: &shark_lineage::Run) -> HashMap<String, Output> {
    let mut files: HashMap<String, Output> = HashMap::new();
    for i in &run.inputs {
        if SYSTEM.iter().any(|s| Path::new(&i.path).starts_with(s)) {
            continue;
        }
        if let (shark_lineage::InputKind::File, Some(d)) = (i.kind, i.digest) {
            let exec = i.mode.is_some_and(|m| m & 0o111 != 0);
            let mode = i.mode.unwrap_or(if exec { 0o755 } else { 0o644 });
            files.insert(i.path.clone(), file_output(&i.path, d, mode));
        }
    }
    for o in &run.outputs {
        if o.kind == OutputKind::Deleted {
            files.retain(|p, _| !Path::new(p).starts_with(&o.path));
        }
        files.insert(o.path.clone(), o.clone());
    }
    files
}

fn file_output(path: &str, digest: Digest, mode: u32) -> Output {
    Output {
        path: path.to_owned(),
        kind: OutputKind::File,
        digest: Some(digest),
        mode: Some(mode),
        symlink_target: None,
    }
}

/// Creates `dir`, which must not exist yet (or be an empty directory).
fn new_dir(dir: &Path) -> Result<(), CliError> {
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none());
    match empty {
        Ok(true) => return Ok(()),
        Ok(false) => {
            return Err(CliError::usage(
                format!("{} exists and is not empty", dir.display()),
                Some("choose a new directory with --into DIR".into()),
            ))
        }
        Err(_) if dir.exists() => {
            return Err(CliError::usage(
                format!("{} exists and is not a directory", dir.display()),
                Some("choose a new directory with --into DIR".into()),
            ))
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::failed(format!("cannot create {}", dir.display()), e))
}

/// Writes one recorded file, directory or symlink below the checkout; whether one was made.
fn materialise(o: &Output, target: &Path, store: &Store) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match o.kind {
        OutputKind::Deleted => Ok(false),
        OutputKind::Dir => {
            std::fs::create_dir_all(target)?;
            let mode = o.mode.unwrap_or(0o755) | 0o700;
            std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))?;
            Ok(false)
        }
        OutputKind::Symlink => {
            let t = o.symlink_target.as_deref().unwrap_or_default();
            std::os::unix::fs::symlink(t, target)?;
            Ok(true)
        }
        OutputKind::File => {
            let digest = o.digest.ok_or_else(|| std::io::Error::other("no digest"))?;
            store
                .restore(&digest, target, o.mode.unwrap_or(0o644))
                .map_err(std::io::Error::other)?;
            Ok(true)
        }
    }
}

/// `shark snapshots [--json]`.
pub(crate) fn snapshots(home: &Home, args: &SnapshotsArgs) -> Result<i32, CliError> {
    let db = open_db(home)?;
    let list = db.live_snapshots().map_err(db_fail)?;
    let mut text = String::new();
    for s in &list {
        if args.json {
            text.push_str(&serde_json::to_string(s).unwrap_or_default());
            text.push('\n');
        } else {
            text.push_str(&format!(
                "{:>6}  {:<5}  {}  {}\n",
                s.run,
                s.backend,
                shark_lineage::rfc3339(s.created),
                s.name
            ));
        }
    }
    emit(&text)?;
    Ok(0)
}
