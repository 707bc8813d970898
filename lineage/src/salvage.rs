//! Rebuilding a damaged lineage database from what can still be read of a copy of it.
//!
//! The lineage database is the user's history, so nothing here runs by itself: the caller
//! (`shark store verify --repair`) keeps a copy of the damaged file first, and asks for the
//! rebuild. The database is then emptied in place (through SQLite, see
//! `shark_store::heal::start_afresh`), given the current schema, and refilled run by run from
//! the copy:
//!
//! - Run ids are found by every way the copy still allows (the table in id order, its
//!   weak-key index, its largest id and `sqlite_sequence`), and each id up to the largest is
//!   then read on its own, so that a damaged page costs the runs on it, not every later one.
//! - A run comes back only whole: its row and all its inputs, outputs, processes and accesses
//!   read without an error, each list numbered `0, 1, 2, ...` without a gap. A run missing
//!   any part is left out: a run with a shortened input list could be reused wrongly.
//! - Every run that comes back is made not reusable. Its record may still be incomplete in a
//!   way SQLite cannot see (a damaged page can look like a valid one), and a wrong reuse is
//!   worse than running a command once more; lineage, logs and replay keep working on it.
//! - A reuse whose original is lost no longer points at it; ids of lost runs are never
//!   given out again.
//!
//! Columns are copied by name, so a copy written by an older shark (an older schema) is
//! rebuilt into the current one; a copy from a newer shark is refused.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags, OptionalExtension};

use crate::schema;
use crate::{Db, LineageError};

/// The tables that hold a run's lists, each keyed by `(run_id, seq)`.
const LISTS: [&str; 4] = ["inputs", "outputs", "processes", "accesses"];

/// What a rebuild brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Runs recovered whole (now not reusable).
    pub runs: u64,
    /// Runs the copy still named (by id) that could not be recovered whole.
    pub lost: Vec<i64>,
    /// Whether every run the copy held could be named; if not, some lost runs are not in
    /// `lost`.
    pub complete: bool,
}

impl Db {
    /// Empties the damaged database at `path` and refills it with the runs that can be read
    /// whole from `copy`, a copy of it kept aside beforehand (see the module documentation).
    /// Take the home's exclusive lock first: no run may be recorded meanwhile.
    pub fn rebuild_from(path: &Path, copy: &Path) -> Result<Rebuilt, LineageError> {
        let open_err = |source| LineageError::Open {
            path: copy.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let old = Connection::open_with_flags(copy, flags).map_err(open_err)?;
        let found = old
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if found > i64::from(schema::CURRENT) {
            return Err(LineageError::NewerSchema {
                path: copy.to_owned(),
                found,
                supported: schema::CURRENT,
            });
        }
        shark_store::heal::start_afresh(path, shark_store::heal::RESET_WAIT).map_err(|source| {
            LineageError::Reset {
                path: path.to_owned(),
                source,
            }
        })?;
        let db = Db::open(path)?;
        let rebuilt = db.refill(&old).map_err(|source| LineageError::Rebuild {
            path: path.to_owned(),
            source,
        });
        drop(old);
        let mut shm = copy.as_os_str().to_owned();
        shm.push("-shm");
        let _ = std::fs::remove_file(std::path::PathBuf::from(shm));
        rebuilt
    }

    fn refill(&self, old: &Connection) -> rusqlite::Result<Rebuilt> {
        let (ids, complete) = run_ids(old);
        let columns = Columns::of(old, &self.conn)?;
        self.conn.pragma_update(None, "foreign_keys", false)?;
        let tx = self.conn.unchecked_transaction()?;
        let mut rebuilt = Rebuilt {
            complete,
            ..Rebuilt::default()
        };
        let last = ids.iter().next_back().copied().unwrap_or(0);
        for id in 1..=last {
            match read_run(old, &columns, id) {
                Some(run) => {
                    insert_run(&tx, &columns, &run)?;
                    rebuilt.runs += 1;
                }
                None if ids.contains(&id) => rebuilt.lost.push(id),
                None => {}
            }
        }
        tx.execute_batch(
            "UPDATE runs SET reusable = 0;
             UPDATE runs SET reused_from = NULL
                 WHERE reused_from IS NOT NULL AND reused_from NOT IN (SELECT id FROM runs);",
        )?;
        let raised = tx.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'runs'",
            [last],
        )?;
        if raised == 0 {
            tx.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('runs', ?1)",
                [last],
            )?;
        }
        tx.commit()?;
        self.conn.pragma_update(None, "foreign_keys", true)?;
        Ok(rebuilt)
    }
}

/// The columns of each table that both the copy and the new database have, in the new
/// database's order.
struct Columns {
    runs: Vec<String>,
    lists: Vec<Vec<String>>,
}

impl Columns {
    fn of(old: &Connection, new: &Connection) -> rusqlite::Result<Columns> {
        let common = |table: &str| -> rusqlite::Result<Vec<String>> {
            let had: BTreeSet<String> = names(old, table).unwrap_or_default().into_iter().collect();
            Ok(names(new, table)?
                .into_iter()
                .filter(|c| had.contains(c))
                .collect())
        };
        Ok(Columns {
            runs: common("runs")?,
            lists: LISTS.iter().map(|t| common(t)).collect::<Result<_, _>>()?,
        })
    }
}

fn names(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let names = stmt.query_map([], |r| r.get(0))?;
    names.collect()
}

/// Every run id the copy still names, and whether each way of listing them reached its end.
fn run_ids(old: &Connection) -> (BTreeSet<i64>, bool) {
    let mut ids = BTreeSet::new();
    let mut whole = false;
    for sql in [
        "SELECT id FROM runs ORDER BY id",
        "SELECT id FROM runs INDEXED BY runs_by_weak_key",
        "SELECT max(id) FROM runs",
        "SELECT seq FROM sqlite_sequence WHERE name = 'runs'",
    ] {
        let Ok(mut stmt) = old.prepare(sql) else {
            continue;
        };
        let Ok(rows) = stmt.query_map([], |r| r.get::<_, Option<i64>>(0)) else {
            continue;
        };
        let mut ended = true;
        for row in rows {
            match row {
                Ok(id) => ids.extend(id),
                Err(_) => {
                    ended = false;
                    break;
                }
            }
        }
        // Either full listing (the table, or its index) names every run.
        whole |= ended && sql.starts_with("SELECT id FROM runs");
    }
    (ids, whole)
}

/// One run as read from the copy: its row, and its lists.
struct Run {
    row: Vec<Value>,
    lists: Vec<Vec<Vec<Value>>>,
}

/// Run `id`, if it and all its lists can be read whole.
fn read_run(old: &Connection, columns: &Columns, id: i64) -> Option<Run> {
    let sql = format!("SELECT {} FROM runs WHERE id = ?1", columns.runs.join(", "));
    let row = old
        .query_row(&sql, [id], |r| values(r, columns.runs.len()))
        .optional()
        .ok()??;
    let mut lists = Vec::with_capacity(LISTS.len());
    for (table, cols) in LISTS.iter().zip(&columns.lists) {
        let sql = format!(
            "SELECT seq, {} FROM {table} WHERE run_id = ?1 ORDER BY seq",
            cols.join(", ")
        );
        let mut stmt = old.prepare_cached(&sql).ok()?;
        let rows: Vec<(i64, Vec<Value>)> = stmt
            .query_map([id], |r| {
                let seq = r.get(0)?;
                let mut vals = Vec::with_capacity(cols.len());
                for i in 0..cols.len() {
                    vals.push(r.get::<_, Value>(i + 1)?);
                }
                Ok((seq, vals))
            })
            .ok()?
            .collect::<Result<_, _>>()
            .ok()?;
        // A list with a gap lost items.
        if rows
            .iter()
            .enumerate()
            .any(|(i, (seq, _))| *seq != i as i64)
        {
            return None;
        }
        lists.push(rows.into_iter().map(|(_, vals)| vals).collect());
    }
    Some(Run { row, lists })
}

fn values(row: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Vec<Value>> {
    (0..n).map(|i| row.get::<_, Value>(i)).collect()
}

fn insert_run(conn: &Connection, columns: &Columns, run: &Run) -> rusqlite::Result<()> {
    insert(conn, "runs", &columns.runs, &run.row)?;
    for ((table, cols), rows) in LISTS.iter().zip(&columns.lists).zip(&run.lists) {
        for row in rows {
            insert(conn, table, cols, row)?;
        }
    }
    Ok(())
}

fn insert(conn: &Connection, table: &str, cols: &[String], row: &[Value]) -> rusqlite::Result<()> {
    let marks = vec!["?"; cols.len()].join(", ");
    let sql = format!("INSERT INTO {table} ({}) VALUES ({marks})", cols.join(", "));
    conn.prepare_cached(&sql)?.execute(params_from_iter(row))?;
    Ok(())
}
