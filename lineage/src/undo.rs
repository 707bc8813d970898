//! Undo data: what the paths a run changed held before it, and the filesystem snapshots taken
//! before it (schema version 6, see `src/schema.rs`).
//!
//! The executor records an [`UndoRecord`] for a run right after the run itself and before its
//! changes reach the user's files; `shark undo` reads it back as [`UndoData`]. Prior content
//! lives in the store (a [`Prior`] with a digest) or in a snapshot (a [`Prior`] naming it).
//! Store bytes kept only for undo count against a budget: [`Db::drop_undo_over`] drops the
//! oldest undo data first, and [`Db::referenced_digests`] keeps the rest from garbage
//! collection.

use std::time::SystemTime;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;
use shark_store::Digest;

use crate::error::query;
use crate::sql::digest_opt;
use crate::time::{from_nanos, to_nanos};
use crate::{serial, Db, LineageError, RunId};

/// What a path held before a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Nothing: the run created the path.
    Absent,
}

impl PriorKind {
    fn as_str(self) -> &'static str {
        match self {
            PriorKind::File => "file",
            PriorKind::Dir => "dir",
            PriorKind::Symlink => "symlink",
            PriorKind::Absent => "absent",
        }
    }
}

impl ToSql for PriorKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for PriorKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        [Self::File, Self::Dir, Self::Symlink, Self::Absent]
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or(FromSqlError::InvalidType)
    }
}

/// The state of one path before a run. Entries are in restore order: a directory before what
/// it contained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Prior {
    /// Absolute path.
    pub path: String,
    /// What was there.
    pub kind: PriorKind,
    /// A file's content in the store; `None` when a snapshot holds it (or for other kinds).
    #[serde(serialize_with = "serial::digest_opt")]
    pub digest: Option<Digest>,
    /// Permission bits of a file or directory.
    pub mode: Option<u32>,
    /// Target of a symlink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    /// The snapshot holding a file's content (its [`SnapshotRecord::name`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// A filesystem snapshot taken before a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotRecord {
    /// The run it was taken before.
    pub run: RunId,
    /// Its name: `dataset@shark-N` (ZFS) or the snapshot's path (btrfs).
    pub name: String,
    /// `zfs` or `btrfs`.
    pub backend: String,
    /// The dataset (ZFS) or subvolume path (btrfs) it is a snapshot of.
    pub filesystem: String,
    /// Where that filesystem is mounted.
    pub mountpoint: String,
    /// When it was taken.
    #[serde(serialize_with = "serial::time")]
    pub created: SystemTime,
    /// Whether the retention policy has destroyed it since.
    pub pruned: bool,
}

/// Undo data to record for a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UndoRecord {
    /// The run this run undid, if it is an undo.
    pub undoes: Option<RunId>,
    /// Bytes the store keeps only for this undo data (content no run wrote or read).
    pub kept_bytes: u64,
    /// The prior state of every changed path, in restore order.
    pub prior: Vec<Prior>,
    /// Snapshots taken before the run.
    pub snapshots: Vec<SnapshotRecord>,
}

/// Recorded undo data of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UndoData {
    /// The run.
    pub run: RunId,
    /// The run it undid, if it is an undo.
    pub undoes: Option<RunId>,
    /// How many paths it changed.
    pub entries: u64,
    /// Bytes the store keeps only for this undo data.
    pub kept_bytes: u64,
    /// Whether the data was dropped to stay within the budget (`prior` is then empty).
    pub dropped: bool,
    /// The prior state of every changed path, in restore order.
    pub prior: Vec<Prior>,
    /// Snapshots taken before the run (pruned ones included).
    pub snapshots: Vec<SnapshotRecord>,
}

/// Totals over all undo data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UndoTotals {
    /// Runs with undo data still kept.
    pub runs: u64,
    /// Store bytes kept only for undo.
    pub kept_bytes: u64,
    /// Runs whose undo data was dropped to stay within the budget.
    pub dropped_runs: u64,
    /// Snapshots not yet pruned.
    pub snapshots: u64,
}

impl Db {
    /// Records `undo` for `run`, all or nothing.
    pub fn record_undo(&mut self, run: RunId, undo: &UndoRecord) -> Result<(), LineageError> {
        let what = format!("record undo data of run {run}");
        let mut insert = || -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO undo_runs (run_id, undoes, entries, kept_bytes) VALUES (?1, ?2, ?3, ?4)",
                params![
                    run.0,
                    undo.undoes.map(|r| r.0),
                    undo.prior.len() as i64,
                    i64::try_from(undo.kept_bytes).unwrap_or(i64::MAX)
                ],
            )?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO undo_prior (run_id, seq, path, kind, digest, mode, symlink_target,
                     snapshot) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (seq, p) in (0_i64..).zip(&undo.prior) {
                let digest = p.digest.as_ref().map(|d| d.as_bytes());
                stmt.execute(params![
                    run.0,
                    seq,
                    p.path,
                    p.kind,
                    digest,
                    p.mode,
                    p.symlink_target,
                    p.snapshot
                ])?;
            }
            drop(stmt);
            for s in &undo.snapshots {
                insert_snapshot(&tx, run, s)?;
            }
            tx.commit()
        };
        insert().map_err(query(&what))
    }

    /// The undo data of `run`, if any was recorded.
    pub fn undo_data(&self, run: RunId) -> Result<Option<UndoData>, LineageError> {
        let what = format!("load undo data of run {run}");
        let load = || -> rusqlite::Result<Option<UndoData>> {
            let head = self
                .conn
                .query_row(
                    "SELECT undoes, entries, kept_bytes, dropped FROM undo_runs WHERE run_id = ?1",
                    [run.0],
                    |r| {
                        Ok(UndoData {
                            run,
                            undoes: r.get::<_, Option<i64>>(0)?.map(RunId),
                            entries: r.get::<_, i64>(1)?.max(0) as u64,
                            kept_bytes: r.get::<_, i64>(2)?.max(0) as u64,
                            dropped: r.get(3)?,
                            prior: Vec::new(),
                            snapshots: Vec::new(),
                        })
                    },
                )
                .optional()?;
            let Some(mut data) = head else {
                return Ok(None);
            };
            let mut stmt = self.conn.prepare_cached(
                "SELECT path, kind, digest, mode, symlink_target, snapshot FROM undo_prior
                 WHERE run_id = ?1 ORDER BY seq",
            )?;
            data.prior = stmt
                .query_map([run.0], prior_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            data.snapshots = self.snapshot_rows("WHERE run_id = ?1", [run.0])?;
            Ok(Some(data))
        };
        load().map_err(query(&what))
    }

    /// The outputs `run` recorded, in order (those of the run it reused, for a reuse).
    pub fn outputs_of(&self, run: RunId) -> Result<Vec<crate::Output>, LineageError> {
        let what = format!("load the outputs of run {run}");
        let origin: Option<Option<i64>> = self
            .conn
            .query_row("SELECT reused_from FROM runs WHERE id = ?1", [run.0], |r| {
                r.get(0)
            })
            .optional()
            .map_err(query(&what))?;
        let Some(origin) = origin else {
            return Err(LineageError::NoSuchRun { id: run });
        };
        let id = origin.map_or(run, RunId);
        crate::load::outputs_of(&self.conn, id).map_err(query(&what))
    }

    /// The newest run with undo data that changed something (dropped data included).
    pub fn last_undoable(&self) -> Result<Option<RunId>, LineageError> {
        self.conn
            .query_row(
                "SELECT run_id FROM undo_runs WHERE entries > 0 ORDER BY run_id DESC LIMIT 1",
                [],
                |r| r.get(0).map(RunId),
            )
            .optional()
            .map_err(query("find the last run that changed anything"))
    }

    /// The newest run that undid `run`, if any.
    pub fn undone_by(&self, run: RunId) -> Result<Option<RunId>, LineageError> {
        self.conn
            .query_row(
                "SELECT run_id FROM undo_runs WHERE undoes = ?1 ORDER BY run_id DESC LIMIT 1",
                [run.0],
                |r| r.get(0).map(RunId),
            )
            .optional()
            .map_err(query("find the undo of a run"))
    }

    /// Totals over all undo data.
    pub fn undo_totals(&self) -> Result<UndoTotals, LineageError> {
        let sum = || -> rusqlite::Result<UndoTotals> {
            let (runs, kept, dropped) = self.conn.query_row(
                "SELECT count(*) FILTER (WHERE dropped = 0 AND entries > 0),
                        coalesce(sum(kept_bytes) FILTER (WHERE dropped = 0), 0),
                        count(*) FILTER (WHERE dropped = 1)
                 FROM undo_runs",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )?;
            let snapshots: i64 = self.conn.query_row(
                "SELECT count(*) FROM undo_snapshots WHERE pruned = 0",
                [],
                |r| r.get(0),
            )?;
            Ok(UndoTotals {
                runs: runs.max(0) as u64,
                kept_bytes: kept.max(0) as u64,
                dropped_runs: dropped.max(0) as u64,
                snapshots: snapshots.max(0) as u64,
            })
        };
        sum().map_err(query("sum up undo data"))
    }

    /// Drops the undo data of the oldest runs that keep store bytes until the bytes kept for
    /// undo are at most `budget`; returns the runs dropped, oldest first. Their blobs are left
    /// for `shark store gc` (which holds the home exclusively) to remove.
    pub fn drop_undo_over(&mut self, budget: u64) -> Result<Vec<RunId>, LineageError> {
        let mut drop_oldest = || -> rusqlite::Result<Vec<RunId>> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut total: i64 = tx.query_row(
                "SELECT coalesce(sum(kept_bytes), 0) FROM undo_runs WHERE dropped = 0",
                [],
                |r| r.get(0),
            )?;
            let budget = i64::try_from(budget).unwrap_or(i64::MAX);
            let mut dropped = Vec::new();
            if total > budget {
                let mut stmt = tx.prepare(
                    "SELECT run_id, kept_bytes FROM undo_runs
                     WHERE dropped = 0 AND kept_bytes > 0 ORDER BY run_id",
                )?;
                let rows = stmt.query_map([], |r| Ok((RunId(r.get(0)?), r.get::<_, i64>(1)?)))?;
                for row in rows {
                    let (run, bytes) = row?;
                    if total <= budget {
                        break;
                    }
                    total -= bytes;
                    dropped.push(run);
                }
            }
            for run in &dropped {
                tx.execute(
                    "UPDATE undo_runs SET dropped = 1 WHERE run_id = ?1",
                    [run.0],
                )?;
                tx.execute("DELETE FROM undo_prior WHERE run_id = ?1", [run.0])?;
            }
            tx.commit()?;
            Ok(dropped)
        };
        drop_oldest().map_err(query("drop old undo data"))
    }

    /// Every snapshot not yet pruned, oldest first.
    pub fn live_snapshots(&self) -> Result<Vec<SnapshotRecord>, LineageError> {
        self.snapshot_rows("WHERE pruned = 0", [])
            .map_err(query("list snapshots"))
    }

    /// Records that snapshot `name` (taken before `run`) no longer exists.
    pub fn mark_snapshot_pruned(&mut self, run: RunId, name: &str) -> Result<(), LineageError> {
        self.conn
            .execute(
                "UPDATE undo_snapshots SET pruned = 1 WHERE run_id = ?1 AND name = ?2",
                params![run.0, name],
            )
            .map(drop)
            .map_err(query("mark a snapshot pruned"))
    }

    fn snapshot_rows<P: rusqlite::Params>(
        &self,
        filter: &str,
        params: P,
    ) -> rusqlite::Result<Vec<SnapshotRecord>> {
        let sql = format!(
            "SELECT run_id, name, backend, filesystem, mountpoint, created_ns, pruned
             FROM undo_snapshots {filter} ORDER BY created_ns, run_id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params, |r| {
            Ok(SnapshotRecord {
                run: RunId(r.get(0)?),
                name: r.get(1)?,
                backend: r.get(2)?,
                filesystem: r.get(3)?,
                mountpoint: r.get(4)?,
                created: from_nanos(r.get(5)?),
                pruned: r.get(6)?,
            })
        })?;
        rows.collect()
    }
}

fn insert_snapshot(
    tx: &rusqlite::Transaction<'_>,
    run: RunId,
    s: &SnapshotRecord,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO undo_snapshots (run_id, name, backend, filesystem, mountpoint, created_ns,
             pruned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run.0,
            s.name,
            s.backend,
            s.filesystem,
            s.mountpoint,
            to_nanos(s.created),
            s.pruned
        ],
    )
    .map(drop)
}

fn prior_from_row(row: &Row<'_>) -> rusqlite::Result<Prior> {
    Ok(Prior {
        path: row.get(0)?,
        kind: row.get(1)?,
        digest: digest_opt(row.get(2)?),
        mode: row.get(3)?,
        symlink_target: row.get(4)?,
        snapshot: row.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewRun;

    fn db_with_runs(n: usize) -> (tempfile::TempDir, Db, Vec<RunId>) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("lineage.db")).unwrap();
        let d = Digest::of_bytes(b"k");
        let ids = (0..n)
            .map(|i| {
                db.record(&NewRun::new(format!("c{i}"), "/w", d, d, SystemTime::now()))
                    .unwrap()
            })
            .collect();
        (dir, db, ids)
    }

    fn file(path: &str, content: &[u8]) -> Prior {
        Prior {
            path: path.into(),
            kind: PriorKind::File,
            digest: Some(Digest::of_bytes(content)),
            mode: Some(0o644),
            symlink_target: None,
            snapshot: None,
        }
    }

    #[test]
    fn undo_data_round_trips_and_its_digests_are_referenced() {
        let (_dir, mut db, ids) = db_with_runs(2);
        let undo = UndoRecord {
            undoes: Some(ids[0]),
            kept_bytes: 7,
            prior: vec![
                file("/w/a", b"old"),
                Prior {
                    path: "/w/new".into(),
                    kind: PriorKind::Absent,
                    digest: None,
                    mode: None,
                    symlink_target: None,
                    snapshot: None,
                },
            ],
            snapshots: Vec::new(),
        };
        db.record_undo(ids[1], &undo).unwrap();
        let back = db.undo_data(ids[1]).unwrap().unwrap();
        assert_eq!(back.prior, undo.prior);
        assert_eq!(back.undoes, Some(ids[0]));
        assert_eq!((back.entries, back.kept_bytes, back.dropped), (2, 7, false));
        assert_eq!(db.undo_data(ids[0]).unwrap(), None);
        assert_eq!(db.last_undoable().unwrap(), Some(ids[1]));
        assert_eq!(db.undone_by(ids[0]).unwrap(), Some(ids[1]));
        assert!(db
            .referenced_digests(None)
            .unwrap()
            .contains(&Digest::of_bytes(b"old")));
    }

    #[test]
    fn the_oldest_undo_data_is_dropped_first_down_to_the_budget() {
        let (_dir, mut db, ids) = db_with_runs(3);
        for (i, id) in ids.iter().enumerate() {
            let undo = UndoRecord {
                kept_bytes: 100,
                prior: vec![file("/w/f", format!("v{i}").as_bytes())],
                ..UndoRecord::default()
            };
            db.record_undo(*id, &undo).unwrap();
        }
        assert_eq!(db.undo_totals().unwrap().kept_bytes, 300);
        assert_eq!(db.drop_undo_over(150).unwrap(), vec![ids[0], ids[1]]);
        let totals = db.undo_totals().unwrap();
        assert_eq!(
            (totals.kept_bytes, totals.dropped_runs, totals.runs),
            (100, 2, 1)
        );
        let first = db.undo_data(ids[0]).unwrap().unwrap();
        assert!(first.dropped && first.prior.is_empty());
        let refs = db.referenced_digests(None).unwrap();
        assert!(!refs.contains(&Digest::of_bytes(b"v0")));
        assert!(refs.contains(&Digest::of_bytes(b"v2")));
        assert!(db.drop_undo_over(150).unwrap().is_empty());
    }
}
