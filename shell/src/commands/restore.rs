//! `shark restore PATH --run N`: puts back the version of a file that a recorded run wrote
//! (or, when it only read the file, the version it read), from the store.

use std::path::Path;

use shark_lineage::{Db, InputKind, Output, OutputKind, Run};
use shark_store::{StatCache, Store};

use super::query::{load_run, parse_run};
use crate::cli::RestoreArgs;
use crate::error::CliError;
use crate::home::Home;

/// `shark restore`.
pub(crate) fn run(home: &Home, args: &RestoreArgs) -> Result<i32, CliError> {
    let _lock = home.lock(false)?;
    let db = Db::open(&home.db_path())
        .map_err(|e| CliError::failed("cannot open the lineage database", e))?;
    let run = load_run(&db, parse_run(&args.run)?)?;
    let abs =
        std::path::absolute(&args.path).map_err(|e| CliError::failed("cannot resolve path", e))?;
    let version = version_of(&run, &abs.to_string_lossy()).ok_or_else(|| {
        CliError::usage(
            format!("run {} neither wrote nor read {}", run.id, abs.display()),
            Some(format!(
                "`shark log --path {}` lists the runs that did",
                args.path.display()
            )),
        )
    })?;
    let store =
        Store::open(&home.store_dir()).map_err(|e| CliError::failed("cannot open the store", e))?;
    let cache = StatCache::open(&home.root().join("statcache.db"))
        .map_err(|e| CliError::failed("cannot open the stat cache", e))?;
    put_back(&version, &store, &cache, home)?;
    eprintln!(
        "shark: {} is now the version run {} {}",
        args.path.display(),
        run.id,
        if run.outputs.iter().any(|o| o.path == version.path) {
            "wrote"
        } else {
            "read"
        }
    );
    Ok(0)
}

/// The file at `path` as `run` left it (its last output there), else as it read it.
fn version_of(run: &Run, path: &str) -> Option<Output> {
    if let Some(o) = run.outputs.iter().rev().find(|o| o.path == path) {
        return (o.kind == OutputKind::File).then(|| o.clone());
    }
    let input = run
        .inputs
        .iter()
        .find(|i| i.path == path && i.kind == InputKind::File)?;
    let mode = input.mode.unwrap_or_else(|| current_mode(Path::new(path)));
    Some(Output {
        path: input.path.clone(),
        kind: OutputKind::File,
        digest: input.digest,
        mode: Some(mode),
        symlink_target: None,
    })
}

fn current_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777)
}

/// Writes the version into the user's files: the one place restore touches them, beneath
/// the directories a command run here could write (never the shark home).
fn put_back(
    version: &Output,
    store: &Store,
    cache: &StatCache,
    home: &Home,
) -> Result<(), CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failed("cannot read the current directory", e))?;
    let roots = crate::exec::writable_roots(&cwd);
    let tree = shark_sandbox::Tree::open(&roots, &[home.root().to_path_buf()])
        .map_err(|e| CliError::failed("cannot open the writable directories", e))?;
    crate::exec::outputs::restore(std::slice::from_ref(version), store, cache, &tree)
        .map_err(|e| CliError::failed(format!("cannot restore {} from the store", version.path), e))
}
