//! `shark export --ro-crate DIR PATH...` and `shark lineage --prov PATH`: a file's lineage in
//! the formats research data is shared in (see the `shark-export` crate).

use std::time::SystemTime;

use shark_export::{rocrate, ExportError, Graph, Target};
use shark_lineage::{Db, LineageOptions};
use shark_store::Store;

use crate::cli::ExportArgs;
use crate::error::CliError;
use crate::home::Home;

fn open_db(home: &Home) -> Result<Db, CliError> {
    Db::open(&home.db_path()).map_err(|e| CliError::failed("cannot open the lineage database", e))
}

/// The current version of each path; a missing or unreadable one is a usage error naming it.
fn targets(paths: &[std::path::PathBuf]) -> Result<Vec<Target>, CliError> {
    paths
        .iter()
        .map(|p| {
            if !p.is_file() {
                return Err(CliError::usage(
                    format!("{}: not a regular file", p.display()),
                    Some("lineage is recorded for files".into()),
                ));
            }
            Target::current(p).map_err(|e| CliError::usage(crate::error::chain(&e), None))
        })
        .collect()
}

fn export_fail(e: ExportError) -> CliError {
    match e {
        ExportError::NotEmpty { path } => CliError::usage(
            format!("{} is not empty", path.display()),
            Some("give a new or empty directory to --ro-crate".into()),
        ),
        other => CliError::failed("cannot export the lineage", other),
    }
}

/// The lineage graph of `paths`, refusing a path no run has produced.
fn graph(db: &Db, targets: &[Target], system: bool) -> Result<Graph, CliError> {
    let opts = LineageOptions {
        include_system: system,
        ..LineageOptions::default()
    };
    let graph = Graph::of(db, targets, &opts).map_err(export_fail)?;
    for t in targets {
        if graph.producer(&t.version).is_none() {
            return Err(CliError::usage(
                format!(
                    "{}: no recorded run produced its current content",
                    t.version.path
                ),
                Some("`shark lineage` shows what is known about it".into()),
            ));
        }
    }
    Ok(graph)
}

/// `shark lineage --prov PATH`: the PROV-JSON document of the file's lineage.
pub(crate) fn prov(home: &Home, path: &std::path::Path, system: bool) -> Result<String, CliError> {
    let db = open_db(home)?;
    let graph = graph(&db, &targets(&[path.to_owned()])?, system)?;
    Ok(format!("{:#}\n", shark_export::prov::document(&graph)))
}

/// `shark export --ro-crate DIR PATH...`.
pub(crate) fn export(home: &Home, args: &ExportArgs) -> Result<i32, CliError> {
    let db = open_db(home)?;
    let graph = graph(&db, &targets(&args.paths)?, args.system)?;
    let store = Store::open_read_only(&home.store_dir())
        .map_err(|e| CliError::failed("cannot open the store", e))?;
    let base = std::env::current_dir()
        .map_err(|e| CliError::failed("cannot read the current directory", e))?;
    let opts = rocrate::Options {
        base,
        license: args.license.clone(),
        now: SystemTime::now(),
    };
    let summary = rocrate::write(&graph, &store, &args.ro_crate, &opts).map_err(export_fail)?;
    let profile = match summary.workflow {
        true => "Workflow Run Crate",
        false => "Process Run Crate",
    };
    eprintln!(
        "shark: wrote {} ({profile}: {} runs, {} files copied, {} referenced by digest)",
        args.ro_crate.display(),
        summary.runs,
        summary.copied,
        summary.referenced
    );
    Ok(0)
}
