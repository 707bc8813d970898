//! `shark store stats|verify|gc|push` (verify in [`super::verify`]).

use std::io::{self, Write};

use shark_store::{Store, StoreError, StoreStats};

use crate::cli::{StatsArgs, StoreCommand};
use crate::error::{is_broken_pipe, CliError};
use crate::home::Home;

pub(crate) fn run(home: &Home, cmd: StoreCommand) -> Result<i32, CliError> {
    let store = Store::open(&home.store_dir()).map_err(store_err)?;
    let mut out = io::stdout().lock();
    let written = match cmd {
        StoreCommand::Stats(args) => {
            let undo = undo_stats(home)?;
            stats(&store, &undo, &args, &mut out)
        }
        StoreCommand::Verify(args) => {
            return super::verify::verify(home, &store, args.repair, &mut out)
                .or_else(super::verify::cli_error)
        }
        StoreCommand::Gc(args) => return gc(home, &store, &args),
        StoreCommand::Push(args) => return push(home, &args.target),
    };
    match written {
        Ok(code) => Ok(code),
        Err(Failure::Store(e)) => Err(store_err(e)),
        Err(Failure::Io(e)) if is_broken_pipe(&e) => Ok(0),
        Err(Failure::Io(e)) => Err(CliError::failed("cannot write to stdout", e)),
    }
}

/// A store error as the command line reports it (the message is the error's own; the cause
/// chain follows).
pub(crate) fn store_err(e: StoreError) -> CliError {
    let message = match &e {
        StoreError::Root { .. } => "cannot open the store",
        StoreError::Corrupt { .. } => "the store holds a corrupt blob",
        _ => "store operation failed",
    };
    CliError::failed(message, e)
}

enum Failure {
    Store(StoreError),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

fn stats(
    store: &Store,
    undo: &UndoStats,
    args: &StatsArgs,
    out: &mut impl Write,
) -> Result<i32, Failure> {
    let s = store.stats().map_err(Failure::Store)?;
    if args.json {
        let mut v = stats_json(&s);
        v["undo"] = undo_json(undo);
        writeln!(out, "{v}")?;
    } else {
        write_stats(&s, out)?;
        write_undo(undo, out)?;
    }
    Ok(0)
}

/// What undo holds: totals from the lineage database and the budget in force.
struct UndoStats {
    totals: shark_lineage::UndoTotals,
    budget: u64,
}

fn undo_stats(home: &Home) -> Result<UndoStats, CliError> {
    let config = crate::undo::config::Config::load()?;
    let totals = match home.db_path().exists() {
        true => shark_lineage::Db::open(&home.db_path())
            .and_then(|db| db.undo_totals())
            .map_err(|e| CliError::failed("cannot read the lineage database", e))?,
        false => shark_lineage::UndoTotals::default(),
    };
    Ok(UndoStats {
        totals,
        budget: config.budget.bytes(&home.store_dir()),
    })
}

fn undo_json(u: &UndoStats) -> serde_json::Value {
    serde_json::json!({
        "runs": u.totals.runs,
        "kept_bytes": u.totals.kept_bytes,
        "budget_bytes": u.budget,
        "dropped_runs": u.totals.dropped_runs,
        "snapshots": u.totals.snapshots,
    })
}

fn write_undo(u: &UndoStats, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "undo:         {} runs, {} kept only for undo (budget {}), {} dropped, {} snapshots",
        u.totals.runs,
        human(u.totals.kept_bytes),
        human(u.budget),
        u.totals.dropped_runs,
        u.totals.snapshots
    )
}

fn stats_json(s: &StoreStats) -> serde_json::Value {
    serde_json::json!({
        "blobs": s.blobs,
        "compressed_blobs": s.compressed_blobs,
        "logical_bytes": s.logical_bytes,
        "stored_bytes": s.stored_bytes,
        "ratio": (s.ratio() * 100.0).round() / 100.0,
    })
}

fn write_stats(s: &StoreStats, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "blobs:        {} ({} compressed)",
        s.blobs, s.compressed_blobs
    )?;
    writeln!(
        out,
        "logical size: {} ({} bytes)",
        human(s.logical_bytes),
        s.logical_bytes
    )?;
    writeln!(
        out,
        "stored size:  {} ({} bytes)",
        human(s.stored_bytes),
        s.stored_bytes
    )?;
    writeln!(out, "ratio:        {:.2}x", s.ratio())
}

/// `bytes` in binary units with one decimal: `0 B`, `512 B`, `1.5 KiB`, `3.0 GiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `shark store gc`: with the home locked against recording shark processes, retire runs
/// older than the cutoff, then remove every blob no kept run refers to.
fn gc(home: &Home, store: &Store, args: &crate::cli::GcArgs) -> Result<i32, CliError> {
    let _lock = home.lock(true)?;
    let mut db = shark_lineage::Db::open(&home.db_path())
        .map_err(|e| CliError::failed("cannot open the lineage database", e))?;
    let cutoff = args.keep_days.map(|days| {
        std::time::SystemTime::now()
            .checked_sub(std::time::Duration::from_secs(days.saturating_mul(86_400)))
            .unwrap_or(std::time::UNIX_EPOCH)
    });
    let mut retired = 0;
    if let (Some(cutoff), false) = (cutoff, args.dry_run) {
        retired = db
            .retire_before(cutoff)
            .map_err(|e| CliError::failed("cannot retire old runs", e))?;
    }
    let keep = db
        .referenced_digests(cutoff)
        .map_err(|e| CliError::failed("cannot list the blobs runs refer to", e))?;
    let before = store.stats().map_err(store_err)?;
    let mut doomed = Vec::new();
    for digest in store.blobs() {
        let digest = digest.map_err(store_err)?;
        if !keep.contains(&digest) {
            doomed.push(digest);
        }
    }
    let mut out = io::stdout().lock();
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if args.dry_run {
        let _ = writeln!(out, "{verb} {} of {} blobs", doomed.len(), before.blobs);
        return Ok(0);
    }
    for digest in &doomed {
        match store.remove(digest) {
            Ok(()) | Err(StoreError::NoSuchBlob { .. }) => {}
            Err(e) => return Err(store_err(e)),
        }
    }
    let after = store.stats().map_err(store_err)?;
    let _ = writeln!(
        out,
        "{verb} {} of {} blobs, freeing {} ({} runs retired); {} blobs remain",
        doomed.len(),
        before.blobs,
        human(before.stored_bytes.saturating_sub(after.stored_bytes)),
        retired,
        after.blobs
    );
    Ok(0)
}

/// `shark store push RUN|PATH`.
fn push(home: &Home, target: &str) -> Result<i32, CliError> {
    let mut exec = crate::exec::Executor::open(home)?;
    let run = super::query::target_run(exec.db(), target)?;
    let text = crate::exec::remote::push(&mut exec, run.id)?;
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if !is_broken_pipe(&e) => Err(CliError::failed("cannot write to stdout", e)),
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }

    #[test]
    fn stats_text_and_json() {
        let s = StoreStats {
            blobs: 3,
            compressed_blobs: 1,
            logical_bytes: 3 << 20,
            stored_bytes: 1 << 20,
        };
        let mut text = Vec::new();
        write_stats(&s, &mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "blobs:        3 (1 compressed)\n\
             logical size: 3.0 MiB (3145728 bytes)\n\
             stored size:  1.0 MiB (1048576 bytes)\n\
             ratio:        3.00x\n"
        );
        assert_eq!(
            stats_json(&s).to_string(),
            r#"{"blobs":3,"compressed_blobs":1,"logical_bytes":3145728,"ratio":3.0,"stored_bytes":1048576}"#
        );
    }
}
